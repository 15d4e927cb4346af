"""kboss.api"""
