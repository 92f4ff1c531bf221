"""Takedown notices: draft and completeness gate, the bilingual PDF, DKIM-signed sending sealed as
sent, replies sealed with the DNS record that proves their origin, and response deadlines."""
