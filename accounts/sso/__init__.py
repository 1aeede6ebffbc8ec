"""Campus single sign-on (docs/SSO.md): the configured identity providers (config.py), who a signed-in
identity is in CampusIQ (services.py), and the OpenID Connect sign-in pages (oidc.py, views.py)."""
