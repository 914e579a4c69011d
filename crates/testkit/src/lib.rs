//! Test support: [`FileServer`], a real HTTP server for files with `Range` requests, and
//! [`glm52`], GLM-5.2's full tensor layout (1,809 tensors) as sparse GGUF files whose headers
//! are exact and whose data are holes.

pub mod glm52;
mod server;

pub use server::{Faults, FileServer};
