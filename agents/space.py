"""The planners' search space is the environments' action space: one codec for both."""

from synthgap.envs.recipe_space import (  # noqa: F401
    CATEGORICAL,
    CONTINUOUS,
    LOG_FIELDS,
    RecipeSpace,
    SpaceError,
    route_label,
)
