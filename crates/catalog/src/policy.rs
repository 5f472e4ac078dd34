//! Resource policies in the catalog: the grammar, parser and evaluation live in `levee-policy`
//! (pure, shared with the front-end, which authorizes calls from the policies its shard map
//! carries); here a refused document becomes the catalog's `InvalidArgumentException`.

pub use levee_policy::*;

use crate::CatalogError;

/// Parses and validates a policy document (see [`levee_policy::parse`]).
pub fn parse(text: &str) -> Result<Policy, CatalogError> {
    levee_policy::parse(text).map_err(|InvalidPolicy(m)| CatalogError::InvalidArgument(m))
}
