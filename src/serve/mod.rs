//! Serving a run to viewers in other processes (`headsup attach` from any SSH
//! session of the same user): the wire protocol, the socket and its access
//! rules, the server a training process runs, and the viewer's client. No TCP:
//! the Unix socket in the run directory is the only listener.

pub mod client;
pub mod pace;
pub mod preparing;
pub mod process;
pub mod protocol;
pub mod run;
pub mod server;
pub mod socket;

pub use client::{connect, AttachError, Connection, Incoming};
pub use protocol::{ClientMsg, ErrorCode, ServerMsg, PROTOCOL_VERSION};
pub use server::{Delivery, ServeOptions, Server, Snapshot};

#[cfg(test)]
mod tests;
