// A real OpenID Connect provider (panva's oidc-provider, OpenID Certified) for the test suite, on a
// loopback port. Configured by environment variables, all JSON where structured:
//   OIDC_PORT      the port (the issuer is http://127.0.0.1:<port>)
//   OIDC_CLIENTS   [{client_id, client_secret, redirect_uris, post_logout_redirect_uris,
//                   backchannel_logout_uri, backchannel_logout_session_required}]
//   OIDC_ACCOUNTS  {"<login>": {<claims: email, groups, student_number, ...>, "amr": [how they signed in]}}
// People sign in on the provider's own development login page (any password; the login is the key
// into OIDC_ACCOUNTS) and confirm on its consent page, as a browser would at a campus's provider.
import Provider from "oidc-provider";

const port = Number(process.env.OIDC_PORT);
const issuer = `http://127.0.0.1:${port}`;
const clients = JSON.parse(process.env.OIDC_CLIENTS || "[]");
const accounts = JSON.parse(process.env.OIDC_ACCOUNTS || "{}");

const provider = new Provider(issuer, {
  clients,
  pkce: { required: () => true },
  claims: {
    openid: ["sub", "acr", "amr", "auth_time"], // how they signed in, as Entra ID and Keycloak send it
    email: ["email", "email_verified"],
    profile: ["name", "given_name", "family_name"],
    campus: ["groups", "student_number"],
  },
  scopes: ["openid", "email", "profile", "campus", "offline_access"],
  conformIdTokenClaims: false, // the requested claims go into the id token, as Entra ID and Keycloak do
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: true }, // a logout at the provider is posted to each client's server
  },
  async findAccount(ctx, id) {
    const claims = accounts[id];
    if (!claims) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...claims }; } };
  },
  async loadExistingGrant(ctx) {
    // Consent is given once per client and session, like a campus provider's first-party clients.
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid email profile campus");
    grant.addOIDCClaims(["email", "email_verified", "name", "given_name", "family_name", "groups", "student_number"]);
    await grant.save();
    return grant;
  },
  // Its outgoing calls (back-channel logout) refuse loopback addresses by default (SSRF protection); here
  // both ends are on loopback by design, so the protecting dispatcher is left out.
  fetch: (url, options) => {
    delete options.dispatcher;
    return globalThis.fetch(url, options);
  },
  ttl: { Session: 3600, Interaction: 600, Grant: 3600, IdToken: 300, AccessToken: 300, AuthorizationCode: 60 },
});
// How the person authenticated (RFC 8176 amr: "mfa" after a second factor) comes from their entry, as a
// campus provider records it at its login; the id token carries it.
const interactionFinished = provider.interactionFinished.bind(provider);
provider.interactionFinished = async (req, res, result, options) => {
  const amr = result.login && accounts[result.login.accountId]?.amr;
  if (amr) result.login.amr = amr;
  return interactionFinished(req, res, result, options);
};
provider.proxy = false;
provider.on("server_error", (ctx, error) => console.error("server_error", error));
provider.on("backchannel.error", (ctx, error, client) => console.error("backchannel.error", client.clientId, error.message, String(error.cause || "")));
provider.on("backchannel.success", (ctx, client) => console.log("backchannel.success", client.clientId));
provider.listen(port, "127.0.0.1", () => console.log(`oidc-provider listening on ${issuer}`));
