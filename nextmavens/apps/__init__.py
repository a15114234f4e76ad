"""App deployments: build detection, rendered Dockerfiles, the release plan, nginx upstreams for an app's names,
and the release flow on the host (docker SDK)."""
