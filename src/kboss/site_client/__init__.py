"""kboss.site_client"""
