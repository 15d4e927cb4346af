"""kboss.site"""
