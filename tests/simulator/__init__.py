"""The bundled simulator spoken to over HTTP, as a client would."""
