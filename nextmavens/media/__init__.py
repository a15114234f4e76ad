"""Media offload: a project's large files moved to Cloudinary (cloudinary.py, the client of its signed upload API;
signing.py, the signature, pure; offload.py, the pass a project's manifest asks for)."""
