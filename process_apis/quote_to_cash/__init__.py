"""Quote-to-cash: a won deal booked as customer, subscription, sales order and write-back;
the won-deal poller and the order checks."""
