"""The webhook configurations: what edgewarden asks the API server to send it.

``render`` builds the Validating/MutatingWebhookConfiguration from a policy set (the
``webhook-config`` command, the chart's static mode); ``conditions`` the matchConditions
in them. Registering them in a cluster is webhook/controllers/registration.py, over the API
calls in webhook/cluster/webhook_configurations.py.
"""
