"""Human-facing views of a run: the data of its report page and its standalone HTML."""
