//! `config` (also `kubectl wca config NAME`): the Convex auth config the operator generated for
//! one resource, read from its ConfigMap and printed as is, ready to redirect into
//! `convex/auth.config.ts`.

use clap::Args;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;

use crate::api::WorkOSConvexAuth;
use crate::kubeconfig::{ClusterArgs, ClusterError};

/// Print the generated Convex auth config of one WorkOSConvexAuth.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// The WorkOSConvexAuth.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Its namespace (default: the context's namespace).
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Which rendering: auth.config.ts, .js or .json.
    #[arg(long, value_enum, default_value = "ts")]
    pub format: ConfigFormat,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `config --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfigFormat {
    Ts,
    Js,
    Json,
}

impl ConfigFormat {
    /// The ConfigMap key holding this rendering.
    pub fn key(self) -> &'static str {
        match self {
            ConfigFormat::Ts => "auth.config.ts",
            ConfigFormat::Js => "auth.config.js",
            ConfigFormat::Json => "auth.config.json",
        }
    }
}

/// Why the config could not be printed; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("cannot read WorkOSConvexAuth {namespace}/{name}: {message}")]
    Resource {
        namespace: String,
        name: String,
        message: String,
    },
    #[error(
        "ConfigMap {namespace}/{config_map} has no {key}: the operator has not generated it yet; `kubectl wca status {name} -n {namespace}` says why"
    )]
    NotGenerated {
        namespace: String,
        name: String,
        config_map: String,
        key: &'static str,
    },
}

/// Reads the resource and its ConfigMap, and prints the rendering.
pub async fn run(args: &ConfigArgs) -> Result<(), ConfigError> {
    print!("{}", read(args).await?);
    Ok(())
}

/// The rendering, as the ConfigMap holds it.
pub async fn read(args: &ConfigArgs) -> Result<String, ConfigError> {
    let client = args.cluster.client().await?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let resource = Api::<WorkOSConvexAuth>::namespaced(client.clone(), &namespace)
        .get(&args.name)
        .await
        .map_err(|e| ConfigError::Resource {
            namespace: namespace.clone(),
            name: args.name.clone(),
            message: e.to_string(),
        })?;
    let config_map = config_map_name(&resource);
    let key = args.format.key();
    let not_generated = || ConfigError::NotGenerated {
        namespace: namespace.clone(),
        name: args.name.clone(),
        config_map: config_map.clone(),
        key,
    };
    let found = Api::<ConfigMap>::namespaced(client, &namespace)
        .get_opt(&config_map)
        .await
        .map_err(|e| ConfigError::Resource {
            namespace: namespace.clone(),
            name: config_map.clone(),
            message: e.to_string(),
        })?
        .ok_or_else(not_generated)?;
    found
        .data
        .and_then(|mut data| data.remove(key))
        .ok_or_else(not_generated)
}

/// The ConfigMap the status names, else the one the spec asks for (or its default name).
fn config_map_name(resource: &WorkOSConvexAuth) -> String {
    resource
        .status
        .as_ref()
        .and_then(|s| s.config_map_name.clone())
        .unwrap_or_else(|| {
            crate::reconcile::names::config_map_name(
                resource.metadata.name.as_deref().unwrap_or_default(),
                resource.spec.config_map.name.as_deref(),
            )
        })
}
