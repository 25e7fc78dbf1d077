//! What Convex accepts: its token-matching rules, the auth config model, and the generator
//! that turns a resource into that config. All pure.
pub mod config;
pub mod deployment;
pub mod generate;
pub mod rules;
pub mod verify;
