"""What a policy is: its parts, the kinds it matches, the request it judges, the decision
it returns, PolicyExceptions and the selectors and keys they use. Imports only CEL below."""
