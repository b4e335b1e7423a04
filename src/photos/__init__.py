"""Summit Photos: the reference application. It imports the platform's ports, never an adapter."""
