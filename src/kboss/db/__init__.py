"""kboss.db"""
