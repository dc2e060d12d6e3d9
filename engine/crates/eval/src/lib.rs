//! sinhtrac-eval (skeleton: being written)
