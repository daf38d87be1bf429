"""The seam between the edges (HTTP routes, commands) and a provider (`local` or `personalize`):
the role Protocols each provider fills, the one fallback policy, and the runtime that builds the
provider of the current environment."""
