package Cpanel::Config::ConfigObj::Driver::Tidemark::META;

# Describes Tidemark's privilege driver (Tidemark.pm beside this folder) to WHM.

use strict;
use warnings;
use parent qw(Cpanel::Config::ConfigObj::Interface::Config::Version::v1);

our $VERSION = '1.0';

sub meta_version { return 1; }

sub get_driver_name { return 'Tidemark_driver'; }

sub content {
    return {
        'vendor'   => 'Tidemark',
        'url'      => '',
        'name'     => { 'short' => 'Tidemark', 'long' => 'Tidemark Backups', 'driver' => get_driver_name() },
        'since'    => 'Tidemark 0.1',
        'abstract' => 'Lets a reseller use Tidemark Backups for the accounts it owns.',
        'version'  => $VERSION,
    };
}

sub showcase { return; }

1;
