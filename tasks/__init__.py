"""pyinfra tasks: one @deploy per concern, called in order by deploys/site.py."""
