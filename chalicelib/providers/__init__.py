"""The two providers: `local` (the embedded engine on a SQLite store) and `personalize` (Amazon
Personalize through boto3). Each fills the roles of `chalicelib.seam.roles`; only
`chalicelib.seam.runtime` chooses between them."""
