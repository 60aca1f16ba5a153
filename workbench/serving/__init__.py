"""Serving a student behind the OpenAI API, the spool of served requests, and the online A/B test."""
