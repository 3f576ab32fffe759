#ifndef BALLAST_VERSION_H
#define BALLAST_VERSION_H
#ifndef BALLAST_VERSION
#define BALLAST_VERSION "0.1.0"
#endif
#endif
