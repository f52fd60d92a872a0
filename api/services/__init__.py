"""Services: what routes delegate to. They raise ``api.errors`` types, never HTTPException."""
