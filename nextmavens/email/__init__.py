"""Email for every project: sending through Resend (resend.py, sending.py), templates from the manifest repository
(templates.py), delivery reports (svix.py) and received mail (inbound.py) stored in the project's email schema
(store.py), media offloaded to Cloudinary (cloudinary.py, offload.py)."""
