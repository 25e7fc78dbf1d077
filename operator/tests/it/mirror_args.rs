//! The Deployment the controller builds runs `workos-convex-auth proxy` with arguments the
//! mirror's own command line accepts: one source of truth, checked across the two halves.

use clap::Parser;
use workos_convex_auth::cli::{Cli, Command};
use workos_convex_auth::render::{RenderOptions, children_of, parse_resources};

#[test]
fn deployment_args_parse_as_a_valid_mirror_configuration() {
    let yaml = r#"
apiVersion: workos-convex.io/v1alpha1
kind: WorkOSConvexAuth
metadata: {name: acme, namespace: apps}
spec:
  clientId: client_01A
  authkitDomain: acme.authkit.app
  proxy: {refreshInterval: 90s, maxStale: 12h}
  ingress: {enabled: true, host: jwks.acme.com, path: /workos}
"#;
    let resource = parse_resources(yaml).unwrap().remove(0);
    let children = children_of(&resource, &RenderOptions::default()).unwrap();
    let pod = children
        .mirror
        .deployment
        .unwrap()
        .spec
        .unwrap()
        .template
        .spec
        .unwrap();
    let args = pod.containers[0].args.clone().unwrap();
    let cli =
        Cli::try_parse_from(std::iter::once("workos-convex-auth".to_string()).chain(args)).unwrap();
    let Command::Proxy(proxy) = cli.command else {
        panic!("the mirror container runs the proxy subcommand")
    };
    let config = proxy
        .into_config()
        .expect("the mirror accepts the controller's configuration");
    let paths: Vec<&str> = config.mirrors.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/workos/sso/jwks/client_01A", "/workos/oauth2/jwks"]
    );
    assert_eq!(config.refresh, std::time::Duration::from_secs(90));
    // The JWKS URL in the config is the mirror's path under the public host.
    assert_eq!(
        children.jwks_url,
        "https://jwks.acme.com/workos/sso/jwks/client_01A"
    );
}
