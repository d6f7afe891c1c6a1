#!/usr/local/cpanel/3rdparty/bin/perl
# Tidemark's WHM page bridge. cpsrvd runs it as root for the logged-in WHM user
# (REMOTE_USER). It hands the request to Tidemark's forwarder, which sends it over the
# daemon's root-only socket with that user's name; the daemon decides from WHM's own
# privileges (/var/cpanel/resellers) who may enter: root (or a reseller with "all") as an
# admin, a reseller holding Tidemark's privilege "software-tidemark" for the accounts it
# owns, nobody else (403). Nothing the browser sends names the user.
use strict;
use warnings;

my @forward = ('@NODE@', '@APP_DIR@/dist/server/bridge/client.js',
    '--mode', 'whm', '--data-dir', '@DATA_DIR@', '--base', 'index.cgi', '--output', 'cgi');
exec { $forward[0] } @forward;
print "Status: 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n\r\n";
print "Tidemark: the forwarder could not be started.\n";
exit 0;
