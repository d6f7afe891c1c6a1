#!/usr/local/cpanel/3rdparty/bin/perl
# Tidemark's WHM page bridge. cpsrvd runs it as root for the logged-in WHM user
# (REMOTE_USER). Who may enter is decided here from WHM's own ACLs, never from anything
# the browser sends: root (the "all" ACL) is a Tidemark admin, a reseller needs
# Tidemark's custom ACL "software-tidemark" and sees only the accounts it owns.
# Forwarding the request to the daemon's socket comes with the web sessions; until then
# the page says so.
use strict;
use warnings;
use lib '/usr/local/cpanel';
use Whostmgr::ACLS ();

Whostmgr::ACLS::init_acls();
my $user = defined $ENV{REMOTE_USER} ? $ENV{REMOTE_USER} : '';
my $role = Whostmgr::ACLS::checkacl('all') ? 'admin'
         : Whostmgr::ACLS::checkacl('software-tidemark') ? 'reseller'
         : '';

sub page {
    my ($status, $text) = @_;
    print "Status: $status\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n\r\n$text\n";
}

if ($role eq '' || $user !~ /\A[A-Za-z0-9_.-]{1,64}\z/) {
    page('403 Forbidden', 'Tidemark: your WHM account does not have the Tidemark privilege.');
    exit 0;
}
page('503 Service Unavailable', "Tidemark: the WHM pages are not available yet (signed in as $user, $role). Use the tidemark command as root meanwhile.");
exit 0;
