"""kboss.services"""
