"""Braze ⇄ Amazon Personalize bridge: all that is not Chalice wiring lives in this package."""
