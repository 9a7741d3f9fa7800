"""PydanticAI agents, built by factories (never at import): the distillers and the search agent.
Importing a module of this package imports pydantic_ai."""
