"""Process APIs: governed business operations as durable flows.

`engine/` runs flows on DBOS Transact (flow and step records, the exception queue, executors,
recovery, the operations service and the `/process/v1/flows` and `/process/v1/exceptions`
routes); each business flow is a package of its own with its flow and its routes
(`quote_to_cash/`, `customer_master/`, `amendment/`, `escalation/`, `payment_failure/`,
`invoice_posting/`), and `webhooks/` is the signed intake that starts them.
"""
