"""The tenant REST API (`/api/v1/` on the tenant host), one module per resource. Views validate
and delegate to the services; each declares who may call each action, and the base class
(`core.api.viewsets`) narrows an affiliate's rows to its own."""
