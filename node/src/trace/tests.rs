//! Recording and validating traces of drivers wired together in memory.
