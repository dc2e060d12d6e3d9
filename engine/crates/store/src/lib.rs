//! sinhtrac-store (skeleton: being written)
