"""kboss.kube"""
