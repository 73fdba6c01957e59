-- An API key may be bound to a client certificate (the SHA-256 of its DER encoding, hex):
-- the key is then accepted only over a TLS connection that presented that certificate.
ALTER TABLE api_keys ADD COLUMN client_cert_sha256 TEXT;
