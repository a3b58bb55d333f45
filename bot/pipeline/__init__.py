"""Processing stages after parsing: clustering, and the poll cycle that ties the stages together."""
