package Cpanel::Config::ConfigObj::Driver::Tidemark;

# Tidemark's custom WHM privilege: "software-tidemark", shown in WHM's
# Edit Reseller Nameservers and Privileges. A reseller holding it may open Tidemark in WHM
# for the accounts it owns. Installed by install/install.sh, removed by uninstall.sh.

use strict;
use warnings;
use parent qw(Cpanel::Config::ConfigObj::Interface::Config::v1);

our $VERSION = '1.0';

sub init {
    my ( $class, $software_obj ) = @_;
    return $class->SUPER::base( { 'thirdparty_ns' => 'Tidemark', 'meta' => {} }, $software_obj );
}

sub info {
    my ($self) = @_;
    return $self->meta()->abstract();
}

sub acl_desc {
    return [
        {
            'acl'              => 'software-tidemark',
            'default_value'    => 0,
            'default_ui_value' => 0,
            'name'             => 'Tidemark Backups',
            'acl_subcat'       => 'Third-Party Services',
        },
    ];
}

1;
