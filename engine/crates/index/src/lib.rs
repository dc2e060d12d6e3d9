//! sinhtrac-index (skeleton: being written)
