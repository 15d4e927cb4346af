"""The site agent, run at each center: its HTTP API (`api`), SSH targets and access, host probes, and the
provisioning of kubeadm control planes and workers (`provision`).

May import the core modules, the adapters `kboss.ssh` and `kboss.kube`, and `kboss.wire`; never the platform's
packages (it runs without the platform's database).
"""
