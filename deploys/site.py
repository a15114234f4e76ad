"""Converge a host: `pyinfra inventory.py deploys/site.py` (from the repository root).
Ordered calls, no logic: each task is one concern (tasks/)."""

from tasks.app import app
from tasks.apply import apply
from tasks.base import base
from tasks.certbot import certbot
from tasks.docker import docker
from tasks.doctor import doctor
from tasks.edge import edge
from tasks.firewall import firewall
from tasks.manifests import manifests
from tasks.nginx import nginx
from tasks.platform import platform
from tasks.platformuser import platform_user
from tasks.preflight import preflight
from tasks.ssh import ssh
from tasks.stacks import stacks
from tasks.summary import summary

preflight()
base()
firewall()
ssh()
docker()
nginx()
certbot()
stacks()
app()
platform_user()
manifests()
edge()
apply()
platform()  # after apply: the service reads the master key the first apply creates
summary()
doctor()
