#!/usr/local/cpanel/3rdparty/bin/perl
# Tidemark's cPanel (Jupiter) page. cPanel runs it as the account's own Unix user. It hands
# the request to Tidemark's forwarder, which connects to the daemon's bridge socket, where the
# kernel tells the daemon which uid connected (SO_PEERCRED), and streams the daemon's page
# back. Nothing the browser sends names the account.
use strict;
use warnings;

my @forward = ('@NODE@', '@APP_DIR@/dist/server/bridge/client.js',
    '--mode', 'account', '--level', 'user', '--bridge-dir', '@BRIDGE_DIR@', '--base', 'index.live.pl', '--output', 'cgi');
exec { $forward[0] } @forward;
print "Status: 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n\r\n";
print "Tidemark: the forwarder could not be started.\n";
exit 0;
