//! sinhtrac-finger (skeleton: being written)
