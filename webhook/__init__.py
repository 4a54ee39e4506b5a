"""edgewarden: a policy-as-code admission webhook for Kubernetes Services and Ingresses."""

__version__ = "0.1.0"
