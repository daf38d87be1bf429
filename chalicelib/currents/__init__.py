"""Braze Currents back into Personalize (SPEC section 11): `avro` streams the records of one
Currents file, `mapping` turns each into a Personalize event and an engagement (or a reason it
is not one), `ingest` runs a file through both with a provider's sender, once per record."""
