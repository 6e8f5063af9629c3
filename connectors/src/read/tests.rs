//! Tests of the reading front-end.
