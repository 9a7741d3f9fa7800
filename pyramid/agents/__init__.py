"""PydanticAI agents, built by factories (never at import): the insight, concept, merge, abstract
and recollection distillers. Importing this package imports pydantic_ai."""
