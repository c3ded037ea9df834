//! FireCamp's manage service on Kubernetes: the FireCampService CRD, the controller that
//! reconciles it (dereference → validate → build → apply → update status), init tasks as Jobs,
//! leader election, and the REST API the CLI talks to.

pub mod backups;
pub mod cloud;
pub mod config;
pub mod crd;
pub mod error;
pub mod install;
pub mod kube_in_flight;
pub mod kube_metrics;
pub mod leader;
pub mod monitoring;
pub mod operations;
pub mod reconcile;
pub mod rest;
pub mod run;
pub mod view;
