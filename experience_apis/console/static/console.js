// The operations console's only script: live regions refresh themselves, and the input
// editor refuses to send what is not JSON. The pages work without it.
"use strict";
(function () {
  // Set once the operator types into a form: a full reload would lose what they typed.
  var typing = false;
  document.addEventListener("input", function () { typing = true; });

  function refresh(id, seconds) {
    window.setInterval(function () {
      if (document.hidden) { return; }
      fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          return response.ok && !response.redirected ? response.text() : null;
        })
        .then(function (text) {
          if (!text) { return; }
          var fresh = new DOMParser().parseFromString(text, "text/html").getElementById(id);
          var current = document.getElementById(id);
          if (!fresh || !current) { return; }
          var changed = fresh.getAttribute("data-version") !== current.getAttribute("data-version");
          if (changed && current.hasAttribute("data-reload-on-change") && !typing) {
            // The rest of the page (exceptions, their forms, vendor calls) changed too.
            window.location.reload();
            return;
          }
          current.replaceWith(fresh);
        })
        .catch(function () { /* the next tick tries again */ });
    }, seconds * 1000);
  }

  function checkJson(form) {
    form.addEventListener("submit", function (event) {
      var area = form.querySelector("textarea");
      var out = form.querySelector(".json-error");
      if (!area || !area.value.trim()) { return; }
      try {
        JSON.parse(area.value);
        if (out) { out.textContent = ""; }
      } catch (error) {
        event.preventDefault();
        if (out) { out.textContent = "Not valid JSON: " + error.message; }
        area.focus();
      }
    });
  }

  document.querySelectorAll("[data-refresh][id]").forEach(function (element) {
    refresh(element.id, Number(element.getAttribute("data-refresh")) || 5);
  });
  document.querySelectorAll("form[data-json]").forEach(checkJson);
})();
